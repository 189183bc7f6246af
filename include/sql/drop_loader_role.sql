-- Remove the loader role (tests do this for the throwaway roles they create).
DROP OWNED BY {role};
DROP ROLE IF EXISTS {role};
