-- Classify every clip: emotion(audio) is the most likely of the eight emotions.
SELECT regexp_extract(path, '[^/]+$', 0) AS file, emotion(content) AS emotion
FROM clips
ORDER BY file
LIMIT 20;

-- All eight probabilities (they sum to 1), from the MFCC features.
SELECT
  regexp_extract(path, '[^/]+$', 0) AS file,
  round(s.neutral, 3) AS neutral, round(s.calm, 3) AS calm, round(s.happy, 3) AS happy,
  round(s.sad, 3) AS sad, round(s.angry, 3) AS angry, round(s.fearful, 3) AS fearful,
  round(s.disgust, 3) AS disgust, round(s.surprised, 3) AS surprised
FROM (SELECT path, emotion_scores(mfcc(content)) AS s FROM clips)
ORDER BY file
LIMIT 20;
