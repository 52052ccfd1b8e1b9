-- Salaried employment by NACE section and region, per quarter (persons with a declaration)
SELECT quarter, sector, region, COUNT(DISTINCT worker) AS workers
FROM declarations
GROUP BY quarter, sector, region
ORDER BY quarter, sector, region
