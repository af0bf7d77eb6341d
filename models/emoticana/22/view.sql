CREATE VIEW default.emotion_train_augmented (
  content,
  label,
  speaker,
  corpus,
  language,
  condition)
TBLPROPERTIES (
  'transient_lastDdlTime' = '1796643000')
WITH SCHEMA COMPENSATION
AS SELECT content, label, speaker, corpus, language, 'clean' AS condition FROM emotion_train
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
FROM emotion_train
