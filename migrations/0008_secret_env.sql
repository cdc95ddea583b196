-- Env values Hangar made for an app at create (a preset's generated values, such as NocoBase's
-- first admin): given to its process like `env`, shown to the operator once in the create's
-- answer, and never serialised out again (as `app_key`). A JSON object of strings.
ALTER TABLE apps ADD COLUMN secret_env_json TEXT NOT NULL DEFAULT '{}';
