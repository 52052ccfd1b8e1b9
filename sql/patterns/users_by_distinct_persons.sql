-- Users ranked by the number of distinct persons they consulted
SELECT actor_id, COUNT(DISTINCT subject_id) AS persons, COUNT(*) AS events
FROM events
WHERE actor_kind = 'person' AND subject_kind = 'niss'
GROUP BY actor_id
ORDER BY persons DESC, actor_id
LIMIT 20
