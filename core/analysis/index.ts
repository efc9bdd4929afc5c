/** The analysis maths of Ladder, in one import. See README.md in this folder. */
export * from './types';
export { analyzeConsistency, findCriticalRung, toGrid } from './consistency';
export type { ConsistencyOptions, ConsistencyResult, CriticalRung } from './consistency';
export { fitScalingLaw, predictScalingLaw } from './scaling-law';
export type { ScalingFit, ScalingModel, ScalingParams, ScalingPoint, FitOptions } from './scaling-law';
export { extrapolateVariant, analyzeExtrapolation } from './extrapolation';
export type { VariantExtrapolation, Backtest, ExtrapolationOptions, AnalyzeExtrapolationOptions, IntervalMethod } from './extrapolation';
export { decidePromotion, predictNextRung } from './promotion';
export type { PromotionRule, VariantScore, PromotionDecision, NextRungPrediction, NextRungOptions } from './promotion';
export { budgetReport, trialCost } from './budget';
export type { BudgetTrial, BudgetPlan, BudgetReport, RungBudget } from './budget';
export { analyzeSweep } from './sweep-analysis';
export type { SweepAnalysisInput, SweepAnalysisResult } from './sweep-analysis';
