-- The RAVDESS training set as SQL: a binaryFile table over the speech folders and a
-- training view (audio bytes, label, speaker). Run once, then train on the view by name:
--   emoticana sql sql/training/ravdess.sql --hivevar ravdess_dir=/abs/path/to/ravdess
--   emoticana train --view ravdess_train
-- (beeline -f works the same with --hivevar ravdess_dir=...)
-- Without ravdess_dir the first statement fails, before anything changes.
SELECT assert_true('${hivevar:ravdess_dir}' NOT LIKE '$%' AND trim('${hivevar:ravdess_dir}') <> '',
                   'this script needs ravdess_dir: --hivevar ravdess_dir=/path/to/ravdess') AS ravdess_dir_given;
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
  CAST(ravdess_meta(path).actor AS STRING) AS speaker
FROM emoticana.ravdess_clips
WHERE ravdess_meta(path).vocal_channel = 'speech';
