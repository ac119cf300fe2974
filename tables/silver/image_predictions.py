"""silver.image_predictions: what the image classifier sees in each image, one row per image and model version.

The current Fashion-MNIST classifier (trained once on the Fashion-MNIST test split and logged to MLflow
when there is none; option retrain=true trains a new version) predicts every image it has not predicted
yet, inside Spark. Images that do not decode go to silver.image_predictions_quarantine with the reason.
"""

from lakehouse import table


@table(
    "What the image classifier sees in each image: class, label, confidence and all class probabilities, "
    "one row per image and model version (the hash of the weights); images that do not decode go to the "
    "quarantine table with the reason.",
    keys=["content_hash", "model_version"],
    quarantine=True,
    mode="insert_new",
    options={"retrain": False, "batch_size": 256},
)
def image_predictions(ctx, images):
    # imported here: torch is slow to import, and reading the project's declarations needs none of it
    from lakehouse.models.fashion_classifier import ensure_model
    from lakehouse.models.predictions import predictions_with_outcome, score_images, unpredicted

    model = ensure_model(ctx.config, retrain=ctx.options["retrain"])
    todo = unpredicted(images, ctx.current(), ctx.current_quarantine(), model.version)
    scored = score_images(
        todo, model.content, int(ctx.options["batch_size"]), partitions=ctx.spark.sparkContext.defaultParallelism
    )
    ctx.counts["model version"] = model.version
    if model.trained:
        ctx.counts["training seconds"] = round(model.training_seconds, 1)
        ctx.counts["held-out accuracy"] = round(model.holdout_accuracy, 4)
    return predictions_with_outcome(scored, model.name, model.version, ctx.run_id)
