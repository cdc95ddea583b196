-- An app's own program (`hangar create NAME -- PROGRAM [ARGS…]`): a JSON object
-- {"argv": [...], "prefix": "keep"|"strip", "health": "/…"}; NULL: its runtime's command.
ALTER TABLE apps ADD COLUMN command_json TEXT;
