"""The README.md written beside an export: what is in it, what was left out and why, and the way back.

The way back is the part people lose: fine-tune on these files, turn the result into a GGUF,
give it to Ollama with a `Modelfile`, check it with `gristmill eval`, then change one line.
"""

from __future__ import annotations

from collections import Counter

from daemon.export.dataset import Dataset

GUIDE = """
## Fine-tuning on these files

Both files are in the chat format (`{{"messages": [...]}}` a line: the system message, the user's
question, the answer to learn) that mlx-lm, Unsloth, axolotl, TRL and OpenAI's fine-tuning read.
Pick a small instruct model as the base; a few hundred examples are often enough to teach it
your labels and fields.

- **mlx-lm** (Apple silicon):
  `mlx_lm.lora --model Qwen/Qwen2.5-1.5B-Instruct --train --data {out} --iters 600 --mask-prompt`,
  then `mlx_lm.fuse --model Qwen/Qwen2.5-1.5B-Instruct --adapter-path adapters --save-path fused`.
- **Unsloth** (NVIDIA GPU): load both files with
  `datasets.load_dataset("json", data_files={{"train": "train.jsonl", "validation": "valid.jsonl"}})`,
  train with its SFT recipe, then `model.save_pretrained_gguf("gguf", tokenizer, quantization_method="q4_k_m")`.
- **TRL**: the same `load_dataset` call; `SFTTrainer` reads the `messages` column as a conversation.

## Bringing the model back

1. A GGUF file: Unsloth writes one; otherwise convert the fused model with llama.cpp
   (`python convert_hf_to_gguf.py fused --outfile model.gguf`, then optionally
   `llama-quantize model.gguf model-q4.gguf Q4_K_M`).
2. A `Modelfile` beside it:

   ```
   FROM ./model.gguf
   PARAMETER temperature 0
   ```

   (If answers come out oddly, copy the `TEMPLATE` line from `ollama show --modelfile BASE`,
   where BASE is the model you started from in Ollama.)
3. `ollama create {workflow}-tuned -f Modelfile`
4. Check it on your own history before it touches a file:
   `gristmill eval {workflow} --model {workflow}-tuned`
5. The switch is one line in the workflow file: `model: {workflow}-tuned`
"""


def readme(workflow: str, out: str, data: Dataset, *, command: str) -> str:
    """The README text for an export of `workflow` into `out`."""
    lines = [
        f"# Training data from gristmill: workflow `{workflow}`",
        "",
        f"Made by `{command}`. {data.runs} runs looked at; the split is by run (a hash of its id, the",
        "same every time), so all answers of one run are in the same file.",
        "",
        "| file | examples | corrected by a person |",
        "|---|---|---|",
        f"| `train.jsonl` | {len(data.train)} | {sum(e.corrected for e in data.train)} |",
        f"| `valid.jsonl` | {len(data.valid)} | {sum(e.corrected for e in data.valid)} |",
        "",
        "Per step: " + (", ".join(f"`{step}` {n}" for step, n in _per_step(data).items()) or "none") + ".",
        "",
        "## Left out",
        "",
    ]
    if data.left_out:
        lines += ["| why | run steps |", "|---|---|"]
        lines += [f"| {why} | {n} |" for why, n in sorted(data.left_out.items(), key=lambda kv: (-kv[1], kv[0]))]
    else:
        lines.append("Nothing: every step of every run looked at is an example.")
    lines += [
        "",
        "A run that failed, was skipped or was a dry run teaches nothing; `record: metadata` keeps only",
        "digests of the prompts; an image document's images are not kept; an answer without a label",
        "(the step was unsure, the run went to review) is left out unless a person corrected it.",
    ]
    return "\n".join(lines) + "\n" + GUIDE.format(out=out, workflow=workflow)


def _per_step(data: Dataset) -> Counter[str]:
    return Counter(e.step_id for e in [*data.train, *data.valid])
