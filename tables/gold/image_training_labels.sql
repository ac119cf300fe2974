-- description: "One training label per valid photo: the annotators' majority label where people labelled it, else the classifier's latest prediction; label_source says which, agreement how far the annotators agreed. A human label below the agreement the expectations require (a tie included) is quarantined: the photo needs more labelling, not the model's guess."
-- keys: [content_hash]
-- quarantine: true
WITH latest_prediction AS (
  SELECT
    content_hash,
    predicted_label,
    confidence,
    model_version,
    row_number() OVER (PARTITION BY content_hash ORDER BY predicted_at DESC, model_version) AS newest
  FROM silver.image_predictions
),
human AS (
  -- a photo in several tasks: the most recent task's labels
  SELECT
    content_hash,
    majority_label,
    agreement,
    annotators,
    row_number() OVER (PARTITION BY content_hash ORDER BY task_id DESC) AS newest
  FROM silver.image_labels_agreement
  WHERE control = 'label' AND content_hash IS NOT NULL
)
SELECT
  i.content_hash,
  i.object_uri,
  CASE WHEN h.content_hash IS NOT NULL THEN h.majority_label ELSE p.predicted_label END AS label,  -- null on a tie
  CASE WHEN h.content_hash IS NOT NULL THEN 'human' ELSE 'model' END AS label_source,
  h.agreement,
  coalesce(h.annotators, 0) AS annotators,
  p.predicted_label AS model_label,
  p.confidence AS model_confidence,
  p.model_version
FROM silver.images AS i
LEFT JOIN latest_prediction AS p ON p.content_hash = i.content_hash AND p.newest = 1
LEFT JOIN human AS h ON h.content_hash = i.content_hash AND h.newest = 1
WHERE h.content_hash IS NOT NULL OR p.predicted_label IS NOT NULL
