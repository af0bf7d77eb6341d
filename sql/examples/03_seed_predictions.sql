-- The seed project's result table, as a persistent view over `clips`:
--   predictions  array of the 5 merged probabilities [neu+calm, happy, ang+sur, sad+fea, disg]
--   value        the clip's path
--   mfccs        the model's feature matrix, flattened ((40 MFCCs + 3 prosody rows) x 301)
--   one column per merged class, each the sum of its 8-class probabilities.
CREATE OR REPLACE VIEW seed_predictions AS
WITH scored AS (
  SELECT path AS value, mfccs, emotion_scores(mfccs) AS s
  FROM (SELECT path, mfcc(content) AS mfccs FROM clips)
)
SELECT
  array(s.neutral + s.calm, s.happy, s.angry + s.surprised, s.sad + s.fearful, s.disgust) AS predictions,
  value,
  mfccs,
  s.neutral + s.calm      AS `neu+calm`,
  s.happy                 AS `happy`,
  s.angry + s.surprised   AS `ang+sur`,
  s.sad + s.fearful       AS `sad+fea`,
  s.disgust               AS `disg`
FROM scored;

SELECT value, predictions, `neu+calm`, `happy`, `ang+sur`, `sad+fea`, `disg`
FROM seed_predictions
ORDER BY value
LIMIT 10;
