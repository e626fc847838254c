-- data_quality: what in the input was broken, in one view; `kind` tells the parts apart:
--   kind = 'file_status'  one row per status (loaded, duplicate, rejected; always all three):
--                          item = status, files, issues = data_issues rows of those files
--   kind = 'rejection'    one row per reason a file was rejected: item = the error up to its
--                          first ':' without the line/column (e.g. 'invalid YAML'); example_value
--                          is one full error message
--   kind = 'field_issue'  one row per field pattern and problem in data_issues: item = the field
--                          with list positions removed (related[3].quality -> related[].quality),
--                          problem, files, issues (rows); example_value is one raw value
-- files_pct is over every input file in source_files. Examples come from the first file by path.
-- Row order: file_status, rejection, field_issue; within a kind, most files first.
-- rejection_reason(error): the kind of a rejection error, e.g.
-- 'invalid YAML at line 5, column 2: did not find expected key' -> 'invalid YAML'.
CREATE OR REPLACE MACRO rejection_reason(error_text) AS
    regexp_replace(split_part(error_text, ':', 1), ' at line [0-9]+, column [0-9]+$', '');

CREATE OR REPLACE VIEW data_quality AS
WITH total AS (
    SELECT count(*) AS n FROM source_files
), statuses AS (
    SELECT * FROM (VALUES (1, 'loaded'), (2, 'duplicate'), (3, 'rejected')) v(pos, status)
), file_status AS (
    SELECT 'file_status' AS kind, 1 AS kind_order, s.pos,
           s.status AS item, CAST(NULL AS VARCHAR) AS problem,
           count(f.source_path) AS files,
           CAST(coalesce(sum(f.issue_count), 0) AS BIGINT) AS issues,
           min(f.source_path) AS example_source_path,
           CAST(NULL AS VARCHAR) AS example_value
    FROM statuses s
    LEFT JOIN source_files f ON f.status = s.status
    GROUP BY s.pos, s.status
), rejected AS (
    SELECT rejection_reason(error) AS reason,
           source_path, error
    FROM source_files
    WHERE status = 'rejected'
), rejection AS (
    SELECT 'rejection', 2, 0, reason, CAST(NULL AS VARCHAR),
           count(*), CAST(NULL AS BIGINT),
           min(source_path), arg_min(error, source_path)
    FROM rejected
    GROUP BY reason
), field_issue AS (
    SELECT 'field_issue', 3, 0,
           regexp_replace(field, '\[[0-9]+\]', '[]', 'g') AS item, problem,
           count(DISTINCT source_path), count(*),
           min(source_path), arg_min(raw_value, source_path)
    FROM data_issues
    GROUP BY item, problem
), u AS (
    SELECT * FROM file_status
    UNION ALL SELECT * FROM rejection
    UNION ALL SELECT * FROM field_issue
)
SELECT u.kind,
       u.item,
       u.problem,
       u.files,
       round(100.0 * u.files / nullif(total.n, 0), 1) AS files_pct,
       u.issues,
       u.example_source_path,
       u.example_value
FROM u CROSS JOIN total
ORDER BY u.kind_order, u.pos, u.files DESC, u.item, u.problem;
