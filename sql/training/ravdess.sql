-- The RAVDESS training set as SQL: a binaryFile table over the speech folders and a
-- training view (audio bytes, label, speaker). Run once, then train on the view by name:
--   emoticana sql sql/training/ravdess.sql --hivevar ravdess_dir=/abs/path/to/ravdess
--   emoticana train --view ravdess_train
-- (beeline -f works the same with --hivevar ravdess_dir=...)
-- Refuses to run, before anything changes, unless the folder is given as an absolute path (an
-- unset variable is substituted as '' by the server, or left as the literal text by some clients).
SELECT assert_true('${hivevar:ravdess_dir}' RLIKE '^/',
                   'set --hivevar ravdess_dir=/abs/path/to/ravdess') AS variables_set;

CREATE DATABASE IF NOT EXISTS emoticana;

DROP TABLE IF EXISTS emoticana.ravdess_clips;
CREATE TABLE emoticana.ravdess_clips
USING binaryFile
OPTIONS (path '${hivevar:ravdess_dir}', pathGlobFilter '*.{wav,flac}', recursiveFileLookup 'true');

-- Speech only (vocal channel 01); labels are the eight RAVDESS emotions.
CREATE OR REPLACE VIEW ravdess_train AS
SELECT
  content,
  ravdess_meta(path).emotion          AS label,
  CAST(ravdess_meta(path).actor AS STRING) AS speaker,
  'ravdess'                           AS corpus
FROM emoticana.ravdess_clips
WHERE ravdess_meta(path).vocal_channel = 'speech';
