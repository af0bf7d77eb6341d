-- The model versions on disk, their metrics, and which one is active.
SELECT name, version, active, created_utc, training_view,
       round(validation_ua, 3) AS validation_ua, round(cv_ua_mean, 3) AS cv_ua_mean, status
FROM emotion_models()
ORDER BY name, version;

-- To switch every session to another version from the next query on:
--   SELECT activate_model('mymodel/1');
-- To use a version in one query only:
--   SELECT emotion(content, 'mymodel/1') FROM clips;
