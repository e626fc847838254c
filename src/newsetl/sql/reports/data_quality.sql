-- What in the input was broken: files by status, rejections by reason, issues by field.
SELECT *
FROM data_quality
ORDER BY CASE kind WHEN 'file_status' THEN 1 WHEN 'rejection' THEN 2 ELSE 3 END,
         CASE item WHEN 'loaded' THEN 1 WHEN 'duplicate' THEN 2 WHEN 'rejected' THEN 3 ELSE 4 END,
         files DESC, item, problem NULLS FIRST;
