-- purpose: the display name a comment was posted under (the token's name claim), shown beside it
-- NULL: the token carried no display name; the page then shows the user id.
ALTER TABLE comments ADD COLUMN user_name text;
