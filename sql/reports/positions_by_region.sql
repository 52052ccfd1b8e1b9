-- Socio-economic position on the last day of 2025-Q4, by region and gender
SELECT position, region, gender, COUNT(DISTINCT person) AS persons
FROM positions
WHERE quarter = '2025-Q4'
GROUP BY position, region, gender
ORDER BY position, region, gender
