# Copyright 2026 swarm test repository
# Distributed under the terms of the GNU General Public License v2

EAPI=8

DESCRIPTION="documentation generator (a build tool)"
HOMEPAGE="https://example.invalid/"
S=${WORKDIR}
LICENSE="MIT"
SLOT="0"
KEYWORDS="amd64"

src_compile() {
	echo "${CATEGORY}/${PF} USE='${USE}' CFLAGS='${CFLAGS}'" > "${T}/${PN}.txt" || die
}

src_install() {
	insinto /usr/share/${PN}
	newins "${T}/${PN}.txt" ${PN}-${SLOT%/*}.txt
}
