"""gold.photo_popularity_training: the nightly training table of the photo popularity model.

One row per photo whose 24-hour label window has closed: metadata, the author's activity as of the upload
(point-in-time correct: lakehouse/transforms/popularity.py), the classifier's outputs, the image and the
label (likes in the first 24 hours). Published only after its audit passes (write-audit-publish).
"""

from lakehouse import table
from lakehouse.transforms.popularity import excluded_photos
from lakehouse.transforms.popularity import photo_popularity_training as training_rows


@table(
    "The nightly training table of the photo popularity model: one row per photo with its metadata, the "
    "author's activity as of the upload (point-in-time correct), the classifier's outputs, the image and the "
    "label (likes in the first 24 hours).",
    keys=["photo_id"],
)
def photo_popularity_training(ctx, photos, users, follows_history, events, image_references, images, image_predictions):
    rows = training_rows(photos, users, follows_history, events, image_references, images, image_predictions)
    ctx.counts["photos in silver"] = photos.count()

    def report(published):
        ctx.counts["training rows"] = published.count()
        for reason, count in sorted(excluded_photos(photos, published, events).items()):
            ctx.counts[f"photos left out: {reason}"] = count

    ctx.after_publish(report)
    return rows
