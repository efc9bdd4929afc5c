/** The analysis maths of Ladder, in one import. See README.md in this folder. */
export * from './types';
export { analyzeConsistency, findCriticalRung, toGrid } from './consistency';
export type { ConsistencyOptions, ConsistencyResult, CriticalRung, RungComparison } from './consistency';
export { ONE_SEED_NOTE } from './consistency';
export { fitScalingLaw, predictScalingLaw } from './scaling-law';
export type { ScalingFit, ScalingModel, ScalingParams, ScalingPoint, FitOptions } from './scaling-law';
export { extrapolateVariant, analyzeExtrapolation, nextRungScale, predictionInterval } from './extrapolation';
export type { VariantExtrapolation, Backtest, ExtrapolationOptions, AnalyzeExtrapolationOptions, IntervalMethod } from './extrapolation';
export { decidePromotion, predictNextRung } from './promotion';
export type { PromotionRule, VariantScore, PromotionDecision, NextRungPrediction, NextRungOptions } from './promotion';
export { budgetReport, trialCost } from './budget';
export type { BudgetTrial, BudgetPlan, BudgetReport, RungBudget } from './budget';
export { analyzeSweep } from './sweep-analysis';
export type { SweepAnalysisInput, SweepAnalysisResult } from './sweep-analysis';
export { sweepVerdict } from './verdict';
export type { VerdictInput, PromotionSummary } from './verdict';
