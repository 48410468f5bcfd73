"""Fine-tuning pieces behind `recsaver.steps.finetune`: SFT rows -> tokens (`rows`), and the
transformers / PEFT student and Trainer (`trainer`). Heavy libraries load only when used."""
