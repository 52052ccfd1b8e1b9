-- Share of failed exchanges per message type, most failing first.
SELECT message_type,
       count(*) AS events,
       round(avg(CASE WHEN result = 'nok' THEN 1.0 ELSE 0.0 END) * 100, 2) AS nok_percent
FROM events
GROUP BY message_type
ORDER BY nok_percent DESC, events DESC, message_type;
