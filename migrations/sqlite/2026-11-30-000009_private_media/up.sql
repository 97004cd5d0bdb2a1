-- Files that are not for the public: qualification documents, refund and complaint evidence.
-- /media/{id} serves them only to their uploader and to moderators; evidence is shown to the
-- order's shop through the order's own route.
ALTER TABLE media ADD COLUMN private BOOLEAN NOT NULL DEFAULT FALSE;
