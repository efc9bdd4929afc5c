/**
 * Types for ml-levenberg-marquardt (an ESM-only package with an `exports` map). The repo's
 * tsconfig uses `moduleResolution: node`, which ignores `exports` and so cannot find the
 * package's own `lib/index.d.ts`; this ambient declaration mirrors the part we use (v5.1).
 * At run time node ≥ 20.19 `require`s the ESM build directly (tsx too).
 */
declare module 'ml-levenberg-marquardt' {
  export interface Data2D {
    x: ArrayLike<number>;
    y: ArrayLike<number>;
  }
  export type ParameterizedFunction = (params: number[]) => (x: number) => number;
  export type JacobianFunction = (params: number[]) => (x: number) => number[];
  export interface LevenbergMarquardtOptions {
    initialValues: ArrayLike<number>;
    weights?: number | ArrayLike<number>;
    damping?: number;
    dampingStepDown?: number;
    dampingStepUp?: number;
    improvementThreshold?: number;
    gradientDifference?: number | ArrayLike<number>;
    centralDifference?: boolean;
    minValues?: ArrayLike<number>;
    maxValues?: ArrayLike<number>;
    maxIterations?: number;
    errorTolerance?: number;
    timeout?: number;
    jacobianFunction?: JacobianFunction;
  }
  export interface LevenbergMarquardtReturn {
    parameterValues: number[];
    parameterError: number;
    iterations: number;
  }
  export function levenbergMarquardt(
    data: Data2D,
    parameterizedFunction: ParameterizedFunction,
    options: LevenbergMarquardtOptions,
  ): LevenbergMarquardtReturn;
}
