-- A BI-friendly view over `clips`: scalar columns only, so Superset, Tableau and other
-- tools list and chart it directly. Persistent: it survives restarts and shows in SHOW TABLES.
-- The scores are the whole clip's, as emotion(content) decides (mfcc(content) would be one
-- 3-second window of a longer one); a clip that cannot be read has every column NULL but its
-- path and file (audio_info(content).error says why), not the first emotion of a tie.
CREATE OR REPLACE VIEW emotion_bi AS
WITH scored AS (
  SELECT path, emotion_scores(content) AS s FROM clips
),
ranked AS (
  SELECT
    path, s,
    array_sort(
      array(
        named_struct('p', s.neutral, 'e', 'neutral'), named_struct('p', s.calm, 'e', 'calm'),
        named_struct('p', s.happy, 'e', 'happy'), named_struct('p', s.sad, 'e', 'sad'),
        named_struct('p', s.angry, 'e', 'angry'), named_struct('p', s.fearful, 'e', 'fearful'),
        named_struct('p', s.disgust, 'e', 'disgust'), named_struct('p', s.surprised, 'e', 'surprised')),
      (a, b) -> CASE WHEN a.p > b.p THEN -1 WHEN a.p < b.p THEN 1 ELSE 0 END)[0] AS top
  FROM scored
)
SELECT
  path,
  regexp_extract(path, '[^/]+$', 0)  AS file,
  ravdess_meta(path).actor           AS actor,
  ravdess_meta(path).gender          AS gender,
  IF(s IS NULL, NULL, top.e)         AS predicted_emotion,
  CAST(top.p AS DOUBLE)              AS confidence,
  CAST(s.neutral AS DOUBLE)          AS p_neutral,
  CAST(s.calm AS DOUBLE)             AS p_calm,
  CAST(s.happy AS DOUBLE)            AS p_happy,
  CAST(s.sad AS DOUBLE)              AS p_sad,
  CAST(s.angry AS DOUBLE)            AS p_angry,
  CAST(s.fearful AS DOUBLE)          AS p_fearful,
  CAST(s.disgust AS DOUBLE)          AS p_disgust,
  CAST(s.surprised AS DOUBLE)        AS p_surprised
FROM ranked;

SELECT predicted_emotion, count(*) AS clips, round(avg(confidence), 3) AS mean_confidence
FROM emotion_bi
GROUP BY predicted_emotion
ORDER BY clips DESC;
