-- What is in the clips table: header facts, RAVDESS fields, and MFCC shape.
-- Rows that cannot be decoded show why in `error`; they do not fail the query.
SELECT
  regexp_extract(path, '[^/]+$', 0)            AS file,
  audio_info(content).format                   AS format,
  audio_info(content).sample_rate              AS sample_rate,
  audio_info(content).channels                 AS channels,
  round(audio_info(content).duration_s, 2)     AS seconds,
  audio_info(content).error                    AS error,
  ravdess_meta(path).emotion                   AS ravdess_emotion,
  ravdess_meta(path).actor                     AS actor,
  size(mfcc(content))                          AS mfcc_values   -- (40 + 3) x 301 = 12943, NULL if unreadable
FROM clips
ORDER BY file
LIMIT 20;

-- Clips per format and the ones that could not be read.
SELECT coalesce(audio_info(content).format, 'unreadable') AS format, count(*) AS n
FROM clips
GROUP BY 1
ORDER BY n DESC;
