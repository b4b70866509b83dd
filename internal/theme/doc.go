// Package theme is what the agent's page and the fleet page share in
// their look: the colours (light and dark), the font and the body
// (theme.css). Each server puts CSS in front of its page's own
// stylesheet when it loads its files, so a colour is changed in one
// place, with no build step and no extra request.
package theme
