-- The multi-corpus training set as SQL: RAVDESS, EmoDB (German), nEMO (Polish) and Indian
-- EmoSpeech (English/Hindi keywords on phones), one view per corpus and their union.
-- Each corpus folder holds audio/ and labels.csv (path,emotion,speaker,language; path relative
-- to the folder). Run once, with both folders inside EMOTICANA_AUDIO_ROOTS:
--   emoticana sql sql/training/corpora.sql --hivevar corpora_dir=/abs/shared/corpora \
--                                          --hivevar ravdess_dir=/abs/shared/ravdess
--   emoticana train --view emotion_train --cv-by corpus --validation-speakers none
-- Every view has: content (audio bytes), label, speaker (named <corpus>_<id>), corpus, language.
-- A clip teaches only about the emotions its corpus has (emoticana train reads `corpus`).
-- EmoDB's `boredom` is none of the eight emotions: those clips are left out.
-- Refuses to run, before anything changes, unless both variables are set (an unset one is
-- substituted as '' by the server, or left as the literal text by some clients).
SELECT assert_true(
  '${hivevar:corpora_dir}' RLIKE '^/' AND '${hivevar:ravdess_dir}' RLIKE '^/',
  'set --hivevar corpora_dir=/abs/path and --hivevar ravdess_dir=/abs/path') AS variables_set;

CREATE DATABASE IF NOT EXISTS emoticana;

-- RAVDESS: labels come from the file names.
DROP TABLE IF EXISTS emoticana.ravdess_clips;
CREATE TABLE emoticana.ravdess_clips
USING binaryFile
OPTIONS (path '${hivevar:ravdess_dir}', pathGlobFilter '*.{wav,flac}', recursiveFileLookup 'true');

CREATE OR REPLACE VIEW ravdess_corpus AS
SELECT
  content,
  ravdess_meta(path).emotion                         AS label,
  concat('ravdess_', ravdess_meta(path).actor)       AS speaker,
  'ravdess'                                          AS corpus,
  'en'                                               AS language
FROM emoticana.ravdess_clips
WHERE ravdess_meta(path).vocal_channel = 'speech';

-- The three corpora with a labels.csv: the audio joined to its row by the path below the
-- corpus folder (audio/...).
DROP TABLE IF EXISTS emoticana.emodb_clips;
CREATE TABLE emoticana.emodb_clips USING binaryFile
OPTIONS (path '${hivevar:corpora_dir}/emodb/audio', pathGlobFilter '*.flac', recursiveFileLookup 'true');
DROP TABLE IF EXISTS emoticana.emodb_labels;
CREATE TABLE emoticana.emodb_labels (path STRING, emotion STRING, speaker STRING, language STRING)
USING csv OPTIONS (path '${hivevar:corpora_dir}/emodb/labels.csv', header 'true');

DROP TABLE IF EXISTS emoticana.nemo_clips;
CREATE TABLE emoticana.nemo_clips USING binaryFile
OPTIONS (path '${hivevar:corpora_dir}/nemo/audio', pathGlobFilter '*.flac', recursiveFileLookup 'true');
DROP TABLE IF EXISTS emoticana.nemo_labels;
CREATE TABLE emoticana.nemo_labels (path STRING, emotion STRING, speaker STRING, language STRING)
USING csv OPTIONS (path '${hivevar:corpora_dir}/nemo/labels.csv', header 'true');

DROP TABLE IF EXISTS emoticana.indemo_clips;
CREATE TABLE emoticana.indemo_clips USING binaryFile
OPTIONS (path '${hivevar:corpora_dir}/indian_emospeech/audio', pathGlobFilter '*.flac', recursiveFileLookup 'true');
DROP TABLE IF EXISTS emoticana.indemo_labels;
CREATE TABLE emoticana.indemo_labels (path STRING, emotion STRING, speaker STRING, language STRING)
USING csv OPTIONS (path '${hivevar:corpora_dir}/indian_emospeech/labels.csv', header 'true');

CREATE OR REPLACE VIEW emodb_corpus AS
SELECT c.content, l.emotion AS label, l.speaker, 'emodb' AS corpus, l.language
FROM emoticana.emodb_clips c
JOIN emoticana.emodb_labels l ON regexp_extract(c.path, '/(audio/.*)$', 1) = l.path
WHERE l.emotion IN ('neutral', 'calm', 'happy', 'sad', 'angry', 'fearful', 'disgust', 'surprised');

CREATE OR REPLACE VIEW nemo_corpus AS
SELECT c.content, l.emotion AS label, l.speaker, 'nemo' AS corpus, l.language
FROM emoticana.nemo_clips c
JOIN emoticana.nemo_labels l ON regexp_extract(c.path, '/(audio/.*)$', 1) = l.path;

CREATE OR REPLACE VIEW indemo_corpus AS
SELECT c.content, l.emotion AS label, l.speaker, 'indemo' AS corpus, l.language
FROM emoticana.indemo_clips c
JOIN emoticana.indemo_labels l ON regexp_extract(c.path, '/(audio/.*)$', 1) = l.path;

-- The union trains the shipped model.
CREATE OR REPLACE VIEW emotion_train AS
SELECT * FROM ravdess_corpus
UNION ALL SELECT * FROM emodb_corpus
UNION ALL SELECT * FROM nemo_corpus
UNION ALL SELECT * FROM indemo_corpus;

-- The union again, each clip also once as recorded another way (udfs/degrade.py: phone lines,
-- codecs, noise, a synthetic crowd, rooms, quiet recordings, short speech), drawn per clip from
-- its hash so the view is the same on every read. Rows whose condition is not 'clean' are trained
-- on, never validated or tested on: figures stay those of audio as recorded.
CREATE OR REPLACE VIEW emotion_train_augmented AS
SELECT content, label, speaker, corpus, language, 'clean' AS condition FROM emotion_train
UNION ALL
SELECT
  degrade(
    content,
    element_at(
      array('telephone', 'telephone+noise:5..20', 'codec:gsm+noise:10..25', 'noise:0..20',
            'babble:0..15', 'reverb:0.2..1.0', 'reverb:0.2..0.8+noise:5..20', 'codec:mp3',
            'codec:opus', 'gain:-25..-10', 'crop:1.0..2.5'),
      1 + pmod(hash(speaker, label, length(content)), 11)),
    hash(content)) AS content,
  label, speaker, corpus, language, 'degraded' AS condition
FROM emotion_train;
