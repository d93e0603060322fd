import { ErrorCodes, TandemError, toErrorShape, type ErrorCode } from '@tandem/contracts';
import { describe, expect, expectTypeOf, it } from 'vitest';
import { BudgetExceededError, ModelError, ModelErrorCode } from '../src/index.js';

describe('ModelError and BudgetExceededError in the TandemError family', () => {
  it('ModelErrorCode is exactly the MODEL.* codes of ErrorCodes', () => {
    expectTypeOf<ModelErrorCode>().toEqualTypeOf<Extract<ErrorCode, `MODEL.${string}`>>();
    const declared = Object.values(ErrorCodes).filter((code) => code.startsWith('MODEL.'));
    expect([...ModelErrorCode.options].sort()).toEqual(declared.sort());
  });

  it('a ModelError is a TandemError whose toShape() equals toJSON()', () => {
    const error = new ModelError('MODEL.RATE_LIMITED', 'slow down', {
      retryable: true,
      status: 429,
      retryAfterMs: 7000,
    });
    expect(error).toBeInstanceOf(TandemError);
    expect(error).toBeInstanceOf(ModelError);
    expect(error.name).toBe('ModelError');
    expect(error.details).toEqual({ status: 429, retryAfterMs: 7000 });
    expect(error.toShape()).toEqual(error.toJSON());
    expect(toErrorShape(error)).toEqual({
      code: 'MODEL.RATE_LIMITED',
      message: 'slow down',
      retryable: true,
      details: { status: 429, retryAfterMs: 7000 },
    });
    const plain = new ModelError('MODEL.ABORTED', 'aborted', { retryable: false });
    expect(plain.details).toBeUndefined();
    expect(toErrorShape(plain)).toEqual({ code: 'MODEL.ABORTED', message: 'aborted', retryable: false });
    // @ts-expect-error a ModelError carries a MODEL.* code only
    expect(new ModelError('BUDGET.EXCEEDED', 'x', { retryable: false }).code).toBe('BUDGET.EXCEEDED');
  });

  it('a BudgetExceededError is a permanent TandemError with its limit in details', () => {
    const error = new BudgetExceededError({ limit: 'calls', max: 2, spent: 2 });
    expect(error).toBeInstanceOf(TandemError);
    expect(error.name).toBe('BudgetExceededError');
    expect(error.code).toBe(ErrorCodes.BUDGET_EXCEEDED);
    expect(error.retryable).toBe(false);
    expect(error.toShape()).toEqual(error.toJSON());
    expect(toErrorShape(error)).toEqual({
      code: 'BUDGET.EXCEEDED',
      message: 'task budget exceeded: 2 of 2 model calls made',
      retryable: false,
      details: { limit: 'calls', max: 2, spent: 2 },
    });
  });
});
