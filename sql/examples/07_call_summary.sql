-- Emotion over time, one row per recording: a BI-friendly summary of emotion_segments.
-- Scalar columns only and persistent, so BI tools list it (SHOW TABLES) and chart it directly.
-- Runs on the `clips` table of 00_clips.sql; point that at a folder of calls, interviews or
-- meetings of any length. The recordings are read by path, in blocks: no length limit
-- (docs/long-recordings.md). Recordings without speech have no row.
CREATE OR REPLACE VIEW call_emotion_summary AS
WITH segments AS (
  SELECT c.path, s.start_s, s.end_s, s.emotion, s.neutral, s.calm, s.happy, s.sad, s.angry,
         s.fearful, s.disgust, s.surprised
  FROM clips c, LATERAL emotion_segments(c.path) s
  WHERE s.error IS NULL
),
timed AS (
  SELECT *, end_s - start_s AS d,
    coalesce(sum(end_s - start_s) OVER (PARTITION BY path ORDER BY start_s DESC
      ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS after_s
  FROM segments
),
weighted AS (
  -- last_w: how much of the segment lies in the last 30 s of speech
  SELECT *, least(d, greatest(0, 30 - after_s)) AS last_w FROM timed
),
per_recording AS (
  SELECT path,
    sum(d) AS speech_s,
    sum(CASE WHEN emotion = 'neutral' THEN d ELSE 0 END) AS neutral_s,
    sum(CASE WHEN emotion = 'calm' THEN d ELSE 0 END) AS calm_s,
    sum(CASE WHEN emotion = 'happy' THEN d ELSE 0 END) AS happy_s,
    sum(CASE WHEN emotion = 'sad' THEN d ELSE 0 END) AS sad_s,
    sum(CASE WHEN emotion = 'angry' THEN d ELSE 0 END) AS angry_s,
    sum(CASE WHEN emotion = 'fearful' THEN d ELSE 0 END) AS fearful_s,
    sum(CASE WHEN emotion = 'disgust' THEN d ELSE 0 END) AS disgust_s,
    sum(CASE WHEN emotion = 'surprised' THEN d ELSE 0 END) AS surprised_s,
    max(angry) AS angriest_confidence,
    max_by(start_s, angry) AS angriest_start_s,
    sum(last_w * neutral) AS last_neutral,
    sum(last_w * calm) AS last_calm,
    sum(last_w * happy) AS last_happy,
    sum(last_w * sad) AS last_sad,
    sum(last_w * angry) AS last_angry,
    sum(last_w * fearful) AS last_fearful,
    sum(last_w * disgust) AS last_disgust,
    sum(last_w * surprised) AS last_surprised
  FROM weighted
  GROUP BY path
)
SELECT
  path,
  regexp_extract(path, '[^/]+$', 0) AS file,
  CAST(speech_s AS DOUBLE) AS speech_s,
  element_at(array('neutral', 'calm', 'happy', 'sad', 'angry', 'fearful', 'disgust', 'surprised'),
    CAST(array_position(array(neutral_s, calm_s, happy_s, sad_s, angry_s, fearful_s, disgust_s, surprised_s), greatest(neutral_s, calm_s, happy_s, sad_s, angry_s, fearful_s, disgust_s, surprised_s)) AS INT)) AS dominant_emotion,
  CAST(neutral_s / speech_s AS DOUBLE) AS share_neutral,
  CAST(calm_s / speech_s AS DOUBLE) AS share_calm,
  CAST(happy_s / speech_s AS DOUBLE) AS share_happy,
  CAST(sad_s / speech_s AS DOUBLE) AS share_sad,
  CAST(angry_s / speech_s AS DOUBLE) AS share_angry,
  CAST(fearful_s / speech_s AS DOUBLE) AS share_fearful,
  CAST(disgust_s / speech_s AS DOUBLE) AS share_disgust,
  CAST(surprised_s / speech_s AS DOUBLE) AS share_surprised,
  CAST(angriest_start_s AS DOUBLE) AS angriest_start_s,
  CAST(angriest_confidence AS DOUBLE) AS angriest_confidence,
  element_at(array('neutral', 'calm', 'happy', 'sad', 'angry', 'fearful', 'disgust', 'surprised'),
    CAST(array_position(array(last_neutral, last_calm, last_happy, last_sad, last_angry, last_fearful, last_disgust, last_surprised), greatest(last_neutral, last_calm, last_happy, last_sad, last_angry, last_fearful, last_disgust, last_surprised)) AS INT)) AS last_30s_emotion
FROM per_recording;

SELECT file, round(speech_s, 1) AS speech_s, dominant_emotion, round(share_angry, 3) AS share_angry,
       round(angriest_start_s, 1) AS angriest_start_s, last_30s_emotion
FROM call_emotion_summary
ORDER BY file;
