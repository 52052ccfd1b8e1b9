-- Full-time equivalents by joint committee, per quarter of 2025
SELECT quarter, joint_committee, SUM(fte) AS fte, COUNT(DISTINCT worker) AS workers
FROM declarations
WHERE quarter >= '2025-Q1'
GROUP BY quarter, joint_committee
ORDER BY quarter, joint_committee
