"""Evidence for swapping models: recorded questions asked again (eval), shadow answers, the figures."""
