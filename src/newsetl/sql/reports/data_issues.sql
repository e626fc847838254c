-- Every field that could not be typed and loaded as NULL, file by file.
SELECT source_path, field, raw_value, problem
FROM data_issues
WHERE ($provider IS NULL OR article_id IN (
          SELECT article_id FROM articles WHERE provider_domain = lower(trim(CAST($provider AS VARCHAR)))))
ORDER BY source_path, field
LIMIT $limit;
