-- How many events each source system logged per day, and how many of them failed.
SELECT day, source, count(*) AS events, sum(CASE WHEN result = 'nok' THEN 1 ELSE 0 END) AS nok
FROM events
GROUP BY day, source
ORDER BY day, source;
