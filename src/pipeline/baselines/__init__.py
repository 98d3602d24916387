"""Expert XGBoost models: one per input combination and target, the yardstick of the evaluation."""
