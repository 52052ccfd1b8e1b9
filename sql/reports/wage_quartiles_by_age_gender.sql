-- Quarterly gross wage of full-time workers by age class and gender: quartiles and median (last quarter)
SELECT age_class, gender, COUNT(DISTINCT worker) AS workers,
       QUANTILE(wage, 0.25) AS q1_wage, MEDIAN(wage) AS median_wage, QUANTILE(wage, 0.75) AS q3_wage
FROM declarations
WHERE quarter = '2025-Q4' AND fte >= 1
GROUP BY age_class, gender
ORDER BY age_class, gender
