-- Evaluate the active model on a labelled table. Here the labels come from RAVDESS file
-- names; for your own data, replace `actual` with your label column.
CREATE OR REPLACE VIEW emotion_labelled AS
SELECT path, ravdess_meta(path).emotion AS actual, emotion(content) AS predicted
FROM clips
WHERE ravdess_meta(path) IS NOT NULL;

-- Confusion matrix in long form: one row per (actual, predicted) pair that occurs.
CREATE OR REPLACE VIEW emotion_confusion AS
SELECT actual, coalesce(predicted, 'unreadable') AS predicted, count(*) AS n
FROM emotion_labelled
GROUP BY actual, coalesce(predicted, 'unreadable');

-- Per-class recall, then accuracy (WA) and unweighted accuracy (UA = mean recall).
CACHE TABLE emotion_confusion_now AS SELECT * FROM emotion_confusion;

SELECT actual,
       sum(n)                                                    AS clips,
       round(sum(CASE WHEN predicted = actual THEN n ELSE 0 END) / sum(n), 3) AS recall
FROM emotion_confusion_now
GROUP BY actual
ORDER BY actual;

SELECT
  round(sum(CASE WHEN predicted = actual THEN n ELSE 0 END) / sum(n), 3) AS accuracy,
  round((SELECT avg(recall) FROM (
           SELECT sum(CASE WHEN predicted = actual THEN n ELSE 0 END) / sum(n) AS recall
           FROM emotion_confusion_now GROUP BY actual)), 3)                AS unweighted_accuracy,
  sum(n)                                                                  AS clips
FROM emotion_confusion_now;

SELECT actual, predicted, n FROM emotion_confusion_now ORDER BY actual, n DESC;

UNCACHE TABLE emotion_confusion_now;
