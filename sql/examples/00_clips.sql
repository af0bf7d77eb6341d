-- The audio table every example works on: a binaryFile table over a folder.
-- Point it at your own folder by changing audio_dir; nothing else changes:
--   beeline -u jdbc:hive2://127.0.0.1:10000 --hivevar audio_dir=/data/calls -f sql/examples/00_clips.sql
-- The table is EXTERNAL (it has a path): dropping it never deletes the audio files.
-- Without audio_dir the first statement fails, before the table is dropped.
SELECT assert_true('${hivevar:audio_dir}' NOT LIKE '$%' AND trim('${hivevar:audio_dir}') <> '',
                   'this script needs audio_dir: --hivevar audio_dir=/path/to/audio') AS audio_dir_given;
DROP TABLE IF EXISTS clips;
CREATE TABLE clips
USING binaryFile
OPTIONS (path '${hivevar:audio_dir}', pathGlobFilter '*.{wav,flac,ogg,WAV,FLAC,OGG}', recursiveFileLookup 'true');
SELECT count(*) AS clips FROM clips;
