-- Persons consulted by unusually many different users (the pattern of a well-known person's file)
SELECT subject_id, COUNT(DISTINCT actor_id) AS users, COUNT(*) AS events
FROM events
WHERE actor_kind = 'person' AND subject_kind = 'niss'
GROUP BY subject_id
ORDER BY users DESC, subject_id
LIMIT 20
