-- Every rejected input file with the reason and the full error.
SELECT source_path, bytes, rejection_reason(error) AS reason, error
FROM source_files
WHERE status = 'rejected'
ORDER BY source_path
LIMIT $limit;
