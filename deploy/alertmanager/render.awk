# Renders alertmanager.yml (next to this file) from the environment, at each start of the
# compose service and of ioc-alertmanager.service, so no secret is ever written to a config file
# of the repository. Portable awk (busybox in the prom/alertmanager image, mawk on Debian):
#
#   ${NAME} or ${NAME:-default}   the variable's value (the default when unset or empty),
#                                 escaped for the YAML double quotes it must stand in;
#   a line ending in "#if A B"    kept (without the tag) only when A and B are all set.
#
#   awk -f render.awk alertmanager.yml > /run/.../alertmanager.yml
{
    line = $0
    if (match(line, /[ \t]+#if( +[A-Z_][A-Z0-9_]*)+[ \t]*$/)) {
        count = split(substr(line, RSTART), names, " ")
        line = substr(line, 1, RSTART - 1)
        for (i = 2; i <= count; i++)
            if (ENVIRON[names[i]] == "")
                next
    }
    out = ""
    while (match(line, /[$][{][A-Za-z_][A-Za-z0-9_]*(:-[^}]*)?[}]/)) {
        spec = substr(line, RSTART + 2, RLENGTH - 3)
        name = spec
        fallback = ""
        split_at = index(spec, ":-")
        if (split_at > 0) {
            name = substr(spec, 1, split_at - 1)
            fallback = substr(spec, split_at + 2)
        }
        value = ENVIRON[name]
        if (value == "")
            value = fallback
        escaped = ""
        for (k = 1; k <= length(value); k++) {
            c = substr(value, k, 1)
            if (c == "\\" || c == "\"")
                escaped = escaped "\\"
            escaped = escaped c
        }
        out = out substr(line, 1, RSTART - 1) escaped
        line = substr(line, RSTART + RLENGTH)
    }
    print out line
}
