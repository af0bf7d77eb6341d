-- The model versions on disk, their metrics, and which one is active.
SELECT name, version, active, created_utc, training_view,
       round(validation_ua, 3) AS validation_ua, round(cv_ua_mean, 3) AS cv_ua_mean, status
FROM emotion_models()
ORDER BY name, version;

-- How each version does on audio it never heard, corpus by corpus: corpora left out of its
-- training and speakers left out (docs/training.md, "Cross-validation").
SELECT name, version, evaluation, corpus, clips, round(unweighted_accuracy, 3) AS ua,
       round(calibration_error, 3) AS calibration_error
FROM emotion_model_figures()
ORDER BY name, version, evaluation, corpus;

-- To switch every session to another version from the next query on:
--   SELECT activate_model('mymodel/1');
-- To use a version in one query only:
--   SELECT emotion(content, 'mymodel/1') FROM clips;
