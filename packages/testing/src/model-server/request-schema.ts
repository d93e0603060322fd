import { z } from 'zod';

// Only the parts of the chat-completions request the scripted server needs are checked strictly;
// everything else (temperature, seed, ...) passes through so real SDK calls are never rejected.

const TextPart = z.looseObject({ type: z.string().min(1) });

const MessageContent = z.union([z.string(), z.array(TextPart), z.null()]);

const RequestToolCall = z.looseObject({
  id: z.string().min(1),
  type: z.literal('function'),
  function: z.looseObject({ name: z.string().min(1), arguments: z.string() }),
});

/** One message of a chat-completions request, as the scripted server validates it. */
export const ChatMessage = z
  .looseObject({
    role: z.enum(['system', 'developer', 'user', 'assistant', 'tool', 'function']),
    content: MessageContent.optional(),
    name: z.string().optional(),
    tool_calls: z.array(RequestToolCall).optional(),
    tool_call_id: z.string().optional(),
  })
  .check((context) => {
    const message = context.value;
    if (message.role === 'tool' && message.tool_call_id === undefined) {
      context.issues.push({
        code: 'custom',
        message: 'a message with role "tool" needs tool_call_id',
        input: message,
        path: ['tool_call_id'],
      });
    }
    if (message.role !== 'assistant' && (message.content === undefined || message.content === null)) {
      context.issues.push({
        code: 'custom',
        message: `a message with role "${message.role}" needs content`,
        input: message,
        path: ['content'],
      });
    }
  });
/** One message of a chat-completions request, as the scripted server validates it. */
export type ChatMessage = z.infer<typeof ChatMessage>;

/** A function tool offered to the model in a chat-completions request. */
export const ChatTool = z.looseObject({
  type: z.literal('function'),
  function: z.looseObject({
    name: z.string().regex(/^[a-zA-Z0-9_-]{1,64}$/, 'tool names are 1-64 of [a-zA-Z0-9_-]'),
    description: z.string().optional(),
    parameters: z.record(z.string(), z.unknown()).optional(),
    strict: z.boolean().nullable().optional(),
  }),
});
/** A function tool offered to the model in a chat-completions request. */
export type ChatTool = z.infer<typeof ChatTool>;

const ToolChoice = z.union([
  z.enum(['none', 'auto', 'required']),
  z.looseObject({ type: z.literal('function'), function: z.object({ name: z.string().min(1) }) }),
  z.looseObject({ type: z.literal('allowed_tools') }),
]);

/** The body of `POST /v1/chat/completions` as the scripted server accepts it. */
export const ChatCompletionRequest = z.looseObject({
  model: z.string().min(1),
  messages: z.array(ChatMessage).min(1),
  tools: z.array(ChatTool).optional(),
  tool_choice: ToolChoice.optional(),
  stream: z.boolean().nullable().optional(),
  stream_options: z.looseObject({ include_usage: z.boolean().optional() }).nullable().optional(),
  max_tokens: z.number().int().positive().nullable().optional(),
  max_completion_tokens: z.number().int().positive().nullable().optional(),
  temperature: z.number().min(0).max(2).nullable().optional(),
});
/** The body of `POST /v1/chat/completions` as the scripted server accepts it. */
export type ChatCompletionRequest = z.infer<typeof ChatCompletionRequest>;
