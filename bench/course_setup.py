"""The course notebook's training set-up, reproduced for the throughput comparison.

What the course did (and the workbook does not): it padded at ``map`` time with
``padding=True``, so every row is padded to the longest row of its ``map`` batch (1000 rows by
default); it built an AdamW optimizer and a scheduler but never passed them to the Trainer, so
the Trainer's defaults trained (learning rate 5e-5, linear decay, no warm-up); batch size 16.
Model, method (P-Tuning v2 with reparameterisation) and data are the workbook's.
"""
from transformers import Trainer, TrainingArguments


def course_trainer(net, tokenizer, dsd, output_dir, compute_metrics=None, train_limit=None, eval_limit=None, seed=42):
    """A Trainer set up as the course notebook set it up, on an already built peft model."""
    def encode(batch):
        return tokenizer(batch["text1"], batch["text2"], truncation=True, padding=True)

    train, val = dsd["train"], dsd["validation"]
    if train_limit:
        train = train.shuffle(seed=seed).select(range(min(train_limit, len(train))))
    if eval_limit:
        val = val.shuffle(seed=seed).select(range(min(eval_limit, len(val))))
    train = train.map(encode, batched=True, remove_columns=["text1", "text2", "idx"])  # map's batch_size: 1000
    val = val.map(encode, batched=True, remove_columns=["text1", "text2", "idx"])
    args = TrainingArguments(output_dir=str(output_dir), per_device_train_batch_size=16, per_device_eval_batch_size=16,
                             num_train_epochs=100, save_strategy="no", report_to=[], seed=seed, use_cpu=True,
                             disable_tqdm=True)
    return Trainer(model=net, args=args, train_dataset=train, eval_dataset=val, processing_class=tokenizer,
                   compute_metrics=compute_metrics)
