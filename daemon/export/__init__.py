"""Training data from the run history: chat-format JSONL for fine-tuning, corrections as the answers."""
