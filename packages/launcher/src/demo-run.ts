import { CreateTaskResponse, TaskView } from '@tandem/contracts';

/** Submits a task over HTTP with a submitter token, prints its plan when it appears and its result when it ends. */
export async function submitAndFollow(options: {
  plannerUrl: string;
  /** A bearer token that may submit the task (a submitter or admin token). */
  token: string;
  task: { goal: string; kind?: string; input?: unknown };
  timeoutMs: number;
  say: (line: string) => void;
}): Promise<'completed' | 'failed' | 'timeout'> {
  const authorization = `Bearer ${options.token}`;
  const response = await fetch(`${options.plannerUrl}/v1/tasks`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization },
    body: JSON.stringify(options.task),
  });
  if (response.status !== 202)
    throw new Error(`submitting the demo task failed: ${response.status} ${await response.text()}`);
  const { taskId } = CreateTaskResponse.parse(await response.json());
  options.say(`demo: task ${taskId} accepted`);
  const deadline = Date.now() + options.timeoutMs;
  let planShown = false;
  while (Date.now() < deadline) {
    const reply = await fetch(`${options.plannerUrl}/v1/tasks/${taskId}`, { headers: { authorization } });
    if (!reply.ok) throw new Error(`reading task ${taskId} failed: ${reply.status} ${await reply.text()}`);
    const view = TaskView.parse(await reply.json());
    if (view.plan && !planShown) {
      planShown = true;
      options.say(`demo: plan v${view.plan.version}`);
      for (const step of view.plan.steps)
        options.say(`  ${step.key}  ${step.tool}  ${JSON.stringify(step.arguments)}`);
    }
    if (view.status === 'completed' || view.status === 'failed') {
      options.say(`demo: task ${view.status}`);
      if (view.result !== null) options.say(`demo: result ${JSON.stringify(view.result, null, 2)}`);
      if (view.error) options.say(`demo: error ${view.error.code}: ${view.error.message}`);
      return view.status;
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  options.say('demo: no outcome in time');
  return 'timeout';
}
