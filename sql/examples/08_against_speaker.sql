-- Each clip judged against its speaker's other clips (docs/relative-emotion.md): what stands out
-- for that voice and microphone, rather than what the model makes of the clip alone. Runs on the
-- `clips` table of 00_clips.sql, taking the folder a clip lies in as its speaker; with a table of
-- your own, partition by its speaker, agent or caller column instead. Groups should share a voice
-- and a microphone and hold clips of several emotions; a group of one clip gets NULL.
CREATE OR REPLACE VIEW clip_emotion_against_speaker AS
SELECT regexp_extract(path, '[^/]+$', 0)                                        AS file,
       speaker,
       emotion_relative(s, emotion_baseline(s) OVER w)                         AS against_speaker,
       emotion_relative(s, emotion_baseline(s) OVER w, v, voice_baseline(v) OVER w)
                                                                                 AS with_voice,
       count(v) OVER w                                                          AS speaker_clips
FROM (SELECT path, regexp_extract(path, '^(.*)/[^/]+$', 1) AS speaker,
             emotion_scores(content) AS s, voice_profile(content) AS v
      FROM clips)
WINDOW w AS (PARTITION BY speaker);

SELECT file, against_speaker, with_voice, speaker_clips
FROM clip_emotion_against_speaker ORDER BY file;
