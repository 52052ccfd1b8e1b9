-- Job outflows: employment relations ended per quarter, by region of the workplace
SELECT end_quarter, region, COUNT(*) AS relations_ended, COUNT(DISTINCT worker) AS workers
FROM relations
WHERE end_quarter IS NOT NULL
GROUP BY end_quarter, region
ORDER BY end_quarter, region
