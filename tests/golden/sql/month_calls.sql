(SELECT * EXCLUDE (month) FROM call_rows WHERE month = '2026-10')
