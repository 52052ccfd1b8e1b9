-- Job inflows: employment relations started per quarter, by kind of contract
SELECT quarter, kind, COUNT(*) AS relations_started, COUNT(DISTINCT worker) AS workers
FROM relations
GROUP BY quarter, kind
ORDER BY quarter, kind
