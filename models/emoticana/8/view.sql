CREATE VIEW default.ravdess_train (
  content,
  label,
  speaker)
TBLPROPERTIES (
  'transient_lastDdlTime' = '1795952951')
WITH SCHEMA COMPENSATION
AS SELECT
  content,
  ravdess_meta(path).emotion          AS label,
  CAST(ravdess_meta(path).actor AS STRING) AS speaker
FROM emoticana.ravdess_clips
WHERE ravdess_meta(path).vocal_channel = 'speech'
