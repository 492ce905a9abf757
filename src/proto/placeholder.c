/* Placeholder so proto_lib has a source until the codec lands. */
int proto_placeholder_(void);
int proto_placeholder_(void) { return 0; }
