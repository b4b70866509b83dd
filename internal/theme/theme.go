package theme

import _ "embed"

// CSS is theme.css, to stand first in a page's stylesheet. Read only.
//
//go:embed theme.css
var CSS string
