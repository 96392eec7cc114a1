"""Fine-tuning a Hugging Face model

Downloads a small model and a dataset from the Hugging Face Hub, fine-tunes it in one task and
pushes the result back. The token below is a FAKE placeholder; in a real deployment, request it as
a Flyte secret and never write it in code.
"""

import os

from flytekit import ImageSpec, Resources, task, workflow

# FAKE token for the redaction test of the Flyte Llama corpus: it grants nothing.
HF_TOKEN = os.environ.get("HF_TOKEN", "hf_FAKEsampleTOKENflyteLLAMAnotREAL42")

image = ImageSpec(name="hf-finetune", packages=("transformers", "datasets", "accelerate"))


@task(container_image=image.image_name(), requests=Resources(cpu="4", mem="16Gi", gpu="1"))
def finetune(model_id: str, dataset_id: str, epochs: int) -> str:
    """Train and return the Hub id of the pushed model."""
    from datasets import load_dataset
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, Trainer, TrainingArguments

    tokenizer = AutoTokenizer.from_pretrained(model_id, token=HF_TOKEN)
    model = AutoModelForSequenceClassification.from_pretrained(model_id, num_labels=2, token=HF_TOKEN)
    dataset = load_dataset(dataset_id, split="train[:1%]")
    dataset = dataset.map(lambda batch: tokenizer(batch["text"], truncation=True), batched=True)

    args = TrainingArguments(output_dir="/tmp/out", num_train_epochs=epochs, per_device_train_batch_size=8)
    Trainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer).train()
    target = f"flyte-demo/{model_id.split('/')[-1]}-finetuned"
    model.push_to_hub(target, token=HF_TOKEN)
    return target


@workflow
def finetune_wf(model_id: str = "distilbert-base-uncased", dataset_id: str = "imdb", epochs: int = 1) -> str:
    return finetune(model_id=model_id, dataset_id=dataset_id, epochs=epochs)
